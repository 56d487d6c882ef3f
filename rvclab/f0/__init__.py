"""F0 methods, one module each, dispatched by rvclab.pitch."""
