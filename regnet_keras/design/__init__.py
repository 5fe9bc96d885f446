"""Design-space research as the paper does it: sampling spaces, sweeps, EDFs and trends, plots."""
