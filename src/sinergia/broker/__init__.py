"""The use cases of the platform, on top of the Store protocol."""
