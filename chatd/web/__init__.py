"""The HTTP and WebSocket edge: Klein routes, the site, the Autobahn socket."""
