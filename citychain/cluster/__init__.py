"""The real world: node processes talking through Mosquitto brokers (docs/deployment.md)."""
