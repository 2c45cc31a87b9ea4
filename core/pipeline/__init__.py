"""From inputs to outputs: the arrays API, samples ready to fit, the two raster pipelines, tiles, Dask."""
