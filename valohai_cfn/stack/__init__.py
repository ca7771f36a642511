"""One module per concern; each `add_<concern>(t, ctx, ...)` adds its resources to the template."""
