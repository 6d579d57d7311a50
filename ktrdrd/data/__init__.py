"""The daemon's bar cache: one Parquet file per (symbol, timeframe) and a catalog in the journal.

- :mod:`.files`: the Parquet files (layout, atomic replacement, digest);
- :mod:`.parse`: the user's CSV/Parquet bytes → validated bars (errors name the line or row);
- :mod:`.calendars`: known-empty intervals from trading calendars;
- :mod:`.intervals`: sorted, disjoint ``[start, end)`` interval lists;
- :mod:`.catalog`: the catalog's rows (SQL run by the journal's threads);
- :mod:`.cache`: :class:`~.cache.BarCache`, one writer per series, all file work off the loop.
"""
