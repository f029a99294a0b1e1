"""Built-in recux plugins, found through the ``recux.plugins`` entry-point group."""
