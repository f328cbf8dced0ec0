"""Steps shared by several operations: laying a system onto a VPS (``provision``), powering a
domain on and off (``power``), applying the record's network state (``network``)."""
