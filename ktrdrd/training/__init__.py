"""Training through the daemon: ``TrainingService`` (:mod:`.service`), the ``train`` and
``train.batch`` operation kinds (:mod:`.kind`, :mod:`.batch`) and the pure work they do in threads
(:mod:`.prepare`). Jobs run on training hosts through :mod:`ktrdrd.hostjobs`. See docs/training.md."""
