"""Federation between nodes: the pictures partners release to each other, over NATS."""
