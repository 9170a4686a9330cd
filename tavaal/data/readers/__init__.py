"""One module per on-disk format / data source. Each exposes a ``read_*`` function returning
raw arrays and a ``load_*`` function returning a :class:`~tavaal.data.DatasetBundle`."""
