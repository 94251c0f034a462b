"""The op-tagged SSA/DAG intermediate representation."""

from .builder import Builder, rebuild
from .graph import Equation, Graph, Param, Value
from .nxview import to_networkx
from .printer import format_graph
from .serialize import dumps, load, loads, save

__all__ = ["Builder", "Equation", "Graph", "Param", "Value", "dumps", "format_graph", "load", "loads",
           "rebuild", "save", "to_networkx"]
