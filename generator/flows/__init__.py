"""The flows that run a build folder (`python -m generator.flows.X OUT`, the build folder's
make targets): C simulation, RTL simulation, synthesis and timing estimates, the report, the
board package and the notebook. Imports the backends and everything below them."""
