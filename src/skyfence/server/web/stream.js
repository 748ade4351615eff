// The node's WebSocket stream (docs/API.md): messages in `seq` order, a reconnect that
// gives back the last `seq` seen (the node sends what was missed, or a snapshot), and
// `resync` (the client fell behind: start again from a snapshot).

export class Stream {
    /**
     * @param {string} url - ws(s)://host/api/v1/stream
     * @param {{onMessage: (msg: object) => void, onState: (state: string, detail: string) => void}} handlers
     */
    constructor(url, {onMessage, onState}) {
        this.url = url;
        this.onMessage = onMessage;
        this.onState = onState;
        this.lastSeq = null;
        this.ws = null;
        this.backoffMs = 500;
        this.timer = null;
        this.stopped = false;
        this.reconnects = 0;
        this.resyncs = 0;
    }

    start() {
        this.stopped = false;
        this._connect();
    }

    stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        if (this.ws) this.ws.close();
    }

    _connect() {
        clearTimeout(this.timer);
        const url = this.lastSeq === null ? this.url
            : `${this.url}${this.url.includes('?') ? '&' : '?'}last_seq=${this.lastSeq}`;
        this.onState(this.reconnects ? 'reconnecting' : 'connecting', url);
        let ws;
        try {
            ws = new WebSocket(url);
        } catch (err) {
            this._retry(String(err));
            return;
        }
        this.ws = ws;
        ws.onopen = () => {
            this.backoffMs = 500;
            this.onState('live', '');
        };
        ws.onmessage = (ev) => this._message(ws, ev.data);
        ws.onclose = () => {
            if (this.ws !== ws) return;
            this.ws = null;
            if (!this.stopped) this._retry('connection closed');
        };
        ws.onerror = () => { /* onclose follows and retries */ };
    }

    _retry(why) {
        this.reconnects += 1;
        const wait = this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, 10000);
        this.onState('reconnecting', `${why}; retrying in ${(wait / 1000).toFixed(1)} s`);
        this.timer = setTimeout(() => this._connect(), wait);
    }

    _reconnectNow() {
        const ws = this.ws;
        this.ws = null;
        if (ws) ws.close();
        this.reconnects += 1;
        this._connect();
    }

    _message(ws, data) {
        if (this.ws !== ws) return;
        let msg;
        try {
            msg = JSON.parse(data);
        } catch {
            return; // not ours to fix: the next message carries on
        }
        if (msg.type === 'resync') {
            this.resyncs += 1;
            this.lastSeq = null;
            this.onState('reconnecting', msg.reason || 'resync');
            this._reconnectNow();
            return;
        }
        if (msg.type === 'snapshot') {
            this.lastSeq = msg.seq;
            this.onMessage(msg);
            return;
        }
        if (this.lastSeq !== null && typeof msg.seq === 'number') {
            if (msg.seq <= this.lastSeq) return; // already in the snapshot
            if (msg.seq > this.lastSeq + 1) {
                // A gap: ask again from where we are; the node sends what is missing.
                this._reconnectNow();
                return;
            }
        }
        if (typeof msg.seq === 'number') this.lastSeq = msg.seq;
        this.onMessage(msg);
    }
}
