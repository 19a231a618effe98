"""Settings that make the GAN fit in well under a second on the synthetic test data."""

FAST = dict(epochs=3, batch_size=128, g_hidden=64, d_hidden=32, threads=1, device="cpu")
