"""Everything that talks to the store: the interface, MongoDB, its in-memory twin, a cache, the embedded nx-27017."""
