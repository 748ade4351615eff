"""Wire formats in and out: each a pure parse/encode pair over bytes, a stateful
stream decoder, and a thin transport (see ``skyfence.adapters.base``)."""
