"""The engine: the ``Model`` type, the graph runner, the compiled passes, the CAM methods,
the batched engine and the overlay. Nothing here knows where a model came from."""
