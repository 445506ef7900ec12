"""The package set of a build: recipe packages + kernel + the chosen agent's variant (family-independent)."""

from __future__ import annotations

from harness.builder.context import BuildContext


def package_set(ctx: BuildContext) -> tuple[list[str], list[str]]:
    """(include, exclude) for the chosen agent: recipe packages + kernel + agent variant."""
    recipe = ctx.recipe
    variant = recipe.agent_variants.get(ctx.agent)
    include = [*recipe.packages_include]
    if recipe.kernel_package:
        include.append(recipe.kernel_package)
    exclude = [*recipe.packages_exclude]
    if variant:
        include.extend(variant.include)
        exclude.extend(variant.exclude)
    include = [p for p in dict.fromkeys(include) if p not in exclude]
    return include, list(dict.fromkeys(exclude))
