"""YAML documents bounded while they are composed: nesting depth and alias expansion.

PyYAML composes a node per value and lets an alias (`*a`) point at its anchor's node, shared.
Two hostile documents follow from that:

- a "billion laughs" (`a: &a [1, 1]`, `b: &b [*a, *a]`, ... ten levels) is a few hundred bytes
  that, once every alias is made its own copy (as our configs do, so that overriding one place
  does not change another), is billions of values;
- a document nested thousands deep (`[[[[...]]]]`) ends in a RecursionError inside PyYAML.

`BoundedComposer` refuses both while composing, before anything is constructed or copied: it
counts, for every node, how many nodes it stands for once aliases are expanded (one memo entry
per node, so the counting is linear in the file), adds each alias's count to the document's, and
tracks the depth. `MAX_DEPTH` and `MAX_ALIAS_NODES` are far above what a real config uses (the
shipped configs nest at most 8 levels, values included, and their aliases repeat at most 60
nodes) and far below what hurts.
"""
import yaml

__all__ = ["BoundedComposer", "BoundedSafeLoader", "safe_load", "YAMLLimitError", "MAX_DEPTH",
           "MAX_ALIAS_NODES"]

MAX_DEPTH = 64                  # nested mappings/lists; PyYAML's recursion fails near 300-1000
MAX_ALIAS_NODES = 100_000       # nodes that aliases may add to a document once expanded


class YAMLLimitError(yaml.YAMLError):
    """A document past a bound; the message names the file and line and says what to do."""


class BoundedComposer:
    """A mixin for a PyYAML Loader (before it in the bases) that bounds depth and aliases.

    The loader's `name` is what messages call the document ('configs/x.yaml', or an override).
    """

    def compose_document(self):
        self._depth, self._alias_nodes, self._expanded = 0, 0, {}
        try:
            return super().compose_document()
        finally:
            self._expanded = {}

    def _where(self, mark):
        return f"{self.name}:{mark.line + 1}"

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._count_alias(self.peek_event())
            return super().compose_node(parent, index)
        start = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YAMLLimitError(f"{self._where(start)}: the document nests deeper than {MAX_DEPTH} "
                                 f"levels here; a config is a few levels of sections and "
                                 f"values, so this file is damaged or hostile.")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._expanded[node] = 1 + sum(self._expanded[child] for child in _children(node))
        return node

    def _count_alias(self, event):
        """Add what the alias expands to; refuse an alias of its own enclosing anchor (a cycle)
        and a document whose aliases add more than MAX_ALIAS_NODES nodes."""
        target = self.anchors.get(event.anchor)
        if target is None:
            return                      # PyYAML says "found undefined alias" itself
        if target not in self._expanded:
            raise YAMLLimitError(f"{self._where(event.start_mark)}: the alias *{event.anchor} is "
                                 f"inside its own anchor &{event.anchor}, which would make the "
                                 f"config endless; copy the values instead.")
        self._alias_nodes += self._expanded[target]
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise YAMLLimitError(f"{self._where(event.start_mark)}: the alias *{event.anchor} "
                                 f"brings the values that aliases repeat to "
                                 f"{self._alias_nodes:,} (more than {MAX_ALIAS_NODES:,}); a "
                                 f"config this size is damaged or hostile (a 'billion laughs'). "
                                 f"Write the values out, or use fewer aliases.")


class BoundedSafeLoader(BoundedComposer, yaml.SafeLoader):
    """PyYAML's SafeLoader with the bounds above."""


def safe_load(text, name):
    """yaml.safe_load with the bounds above; `name` (a path) is what errors call the document."""
    loader = BoundedSafeLoader(text)
    loader.name = str(name)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _children(node):
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return ()
