"""HTTP surface of the bridge for citizens' browsers: the API v1 and the widget."""
