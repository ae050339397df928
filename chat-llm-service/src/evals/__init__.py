"""The evaluation set of the assistant's tools: cases (``cases.json``), the data they are about
(``seed``), the offline model that answers them (``test_model``) and the scorer (``scorer``).

``tests/evals/test_evaluations.py`` runs them against the service as a process; see the README's
"Evaluations" for running the same set against a real model (``make evals``).
"""
