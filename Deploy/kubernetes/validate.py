"""Validates Deploy/kubernetes: every file its kustomization.yaml lists (and no YAML file it leaves out), each
document either a built-in kind, checked by kubernetes-validate against that Kubernetes version's schemas in strict
mode (an unknown field fails), or a custom resource (KEDA's ScaledObject and TriggerAuthentication, the RabbitMQ
operator's RabbitmqCluster) and the kustomization itself, checked with jsonschema against our schemas in schemas/,
which cover the fields we use and reject any other.

    .venv/bin/python Deploy/kubernetes/validate.py KUBERNETES_VERSION [DIRECTORY]

Prints one line per problem and exits 1 if there is any; Deploy/check-deploy runs it."""
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = pathlib.Path(__file__).resolve().parent
# Custom resources and kustomize's own file: (apiVersion, kind) -> the schema in schemas/.
OUR_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication.keda.sh-v1alpha1.json",
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmqcluster.rabbitmq.com-v1beta1.json",
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): "kustomization.kustomize.config.k8s.io-v1beta1.json",
}


def where(error):
    return "/".join(str(part) for part in error.absolute_path) or "(top)"


def check_with_our_schema(document, schema_name, label):
    schema = json.loads((HERE / "schemas" / schema_name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{label}: {where(e)}: {e.message} (schemas/{schema_name})"
            for e in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))]


def check_document(document, version, label):
    if not isinstance(document, dict) or "apiVersion" not in document or "kind" not in document:
        return [f"{label}: not a Kubernetes object (no apiVersion and kind)"]
    key = (document["apiVersion"], document["kind"])
    if key in OUR_SCHEMAS:
        return check_with_our_schema(document, OUR_SCHEMAS[key], label)
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{label}: {where(e)}: {e.message} (Kubernetes {version}, strict)"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{label}: no schema for {key[1]} ({key[0]}) in Kubernetes {version}, nor in schemas/: "
                "add a schema for this custom resource to schemas/ and to OUR_SCHEMAS"]
    return []


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    version = sys.argv[1]
    directory = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else HERE
    problems = []
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    problems += check_with_our_schema(kustomization, OUR_SCHEMAS[("kustomize.config.k8s.io/v1beta1", "Kustomization")],
                                      "kustomization.yaml")
    listed = kustomization.get("resources", []) if isinstance(kustomization, dict) else []
    present = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: not listed in kustomization.yaml's resources (kubectl apply -k would leave it out)")
    checked = 0
    for name in listed:
        path = directory / name
        if not path.is_file():
            problems.append(f"kustomization.yaml: lists {name}, which does not exist")
            continue
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{name}: not valid YAML: {e}")
            continue
        for index, document in enumerate(documents):
            label = name if len(documents) == 1 else f"{name}[{index}]"
            problems += check_document(document, version, label)
            checked += 1
    for problem in problems:
        print(f"kubernetes: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"kubernetes: {checked} objects and kustomization.yaml valid (Kubernetes {version} strict; custom resources "
          f"against schemas/)", file=sys.stderr)


if __name__ == "__main__":
    main()
