"""Rasters on disk: reading and writing, grids and alignment, cloud masks, tiles, GDAL error handling."""
