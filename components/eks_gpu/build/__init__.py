"""The components that build: each takes a decided design and registers resources, nothing else."""
