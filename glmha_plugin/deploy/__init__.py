"""Taking a trained network to where it runs: spandrel-based applications (:mod:`.spandrel`)."""
