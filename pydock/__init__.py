"""pydock: the application (CLI, engine, store, images)."""
