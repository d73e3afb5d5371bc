"""Real test doubles: a local feed HTTP server and feed document builders."""
