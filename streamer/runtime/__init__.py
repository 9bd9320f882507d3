"""The engine at run time: choosing and loading it (engine_factory), running it in a child
process (engine_process), feeding it through one thread and a bounded queue (engine_worker),
and keeping prepared portraits (source_cache). Nothing here knows about HTTP."""
