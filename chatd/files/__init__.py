"""Files shared in rooms: uploads, type sniffing, names, downloads' rules."""
