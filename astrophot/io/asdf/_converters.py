# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""asdf converters for the provenance records."""

from asdf.extension import Converter

__all__ = ["FrameReferenceConverter", "ProcessingStepConverter", "ProvenanceConverter"]

_TAG = "asdf://astrophot.org/astrophot/tags/{}-1.0.0"


def _plain(value):
    """Tuples (frozen parameters) back to lists for YAML."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class FrameReferenceConverter(Converter):
    tags = [_TAG.format("frame_reference")]
    types = ["astrophot.provenance._records.FrameReference"]

    def to_yaml_tree(self, obj, tag, ctx):
        node = {"sha256": obj.sha256, "frame_type": obj.frame_type}
        for name in ("path", "role", "provenance_id"):
            value = getattr(obj, name)
            if value is not None:
                node[name] = value
        return node

    def from_yaml_tree(self, node, tag, ctx):
        from astrophot.provenance import FrameReference

        return FrameReference(**dict(node))


class ProcessingStepConverter(Converter):
    tags = [_TAG.format("processing_step")]
    types = ["astrophot.provenance._records.ProcessingStep"]

    def to_yaml_tree(self, obj, tag, ctx):
        node = {
            "function": obj.function,
            "parameters": _plain(obj.parameters),
            "inputs": list(obj.inputs),
            "outcome": _plain(obj.outcome),
            "start_time": obj.start_time,
            "duration": float(obj.duration),
            "software": dict(obj.software),
        }
        if obj.output is not None:
            node["output"] = obj.output
        return node

    def from_yaml_tree(self, node, tag, ctx):
        from astrophot.provenance import ProcessingStep

        node = dict(node)
        return ProcessingStep(
            function=node["function"],
            parameters=dict(node.get("parameters") or {}),
            inputs=tuple(node.get("inputs") or ()),
            output=node.get("output"),
            outcome=dict(node.get("outcome") or {}),
            start_time=node["start_time"],
            duration=node["duration"],
            software=dict(node.get("software") or {}),
        )


class ProvenanceConverter(Converter):
    tags = [_TAG.format("provenance")]
    types = ["astrophot.provenance._records.Provenance"]

    def to_yaml_tree(self, obj, tag, ctx):
        return {"id": obj.id, "steps": list(obj.steps)}

    def from_yaml_tree(self, node, tag, ctx):
        from astrophot.provenance import Provenance

        return Provenance(id=node["id"], steps=tuple(node.get("steps") or ()))
