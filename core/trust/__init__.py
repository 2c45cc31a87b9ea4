"""How far to trust a result: metrics, self-validation on synthetic clouds, the HTML run report."""
