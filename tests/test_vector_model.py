"""The test-only VectorModel passes the model contract (so the service tests built on it mean
something)."""

from recogan.testing import ModelContract
from tests.vector_model import VectorModel, vector_model_registered  # noqa: F401


class TestVectorModel(ModelContract):
    def make_model(self):
        return VectorModel(dim=4)
