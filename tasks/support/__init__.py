"""Support: errors, lazy imports and progress output; imports nothing of tasks."""
