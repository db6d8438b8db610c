"""Graph drivers shipped with pydock; each registers through the pydock.graphdrivers group."""
