"""Pure helpers under every layer: the standard library only, so the domain packages and il2ward both import them
(pyproject's import contracts: below il2ward, and pure like the domain packages)."""
