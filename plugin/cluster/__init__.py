"""The facility cluster, Ray side: the Ray Serve application (``app``), deploying it and reading its state
(``deploy``), and the bay options shared by ``caption`` and ``serve`` (``bay``)."""
