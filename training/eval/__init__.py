"""Training-side evaluation: the held-out split (``held_out``), the real-image transfer sets
(``transfer``), the retrieval metrics (``metrics``) and the training report (``report``). Every
figure embeds through one function, ``held_out.embed_dataset`` -- the exported graph's ``forward`` --
so the trainer's Recall@1 is the SDK's (tests/training/test_transfer_eval.py)."""
