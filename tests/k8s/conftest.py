import pytest

from tests.k8s import manifests
from tests.k8s.manifests import Manifest


@pytest.fixture(scope="session")
def rendered() -> list[Manifest]:
    """The objects `kubectl apply -k k8s/` creates, rendered once per test session."""
    return manifests.render()
