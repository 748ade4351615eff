"""The node: engine, service, configuration."""
