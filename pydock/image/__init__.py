"""Images: the content store, layer archives, image configs and manifests, and the verbs.

- ``service``: :class:`Images`, every image verb (import, load, save, pull, push, tag, rmi,
  inspect, history, prune, df), composed into the engine;
- ``config``: image configs, chain ids, history; ``reference``, ``resolve``: names;
- ``content``: the content store of blobs; ``blobs``: which blobs are in use, collection;
- ``layertar``: a layer tar checked and stored; ``layercache``: layers made present in drivers;
- ``ingest``: an image's blobs and rows committed together; ``load``/``save``/``bundle``:
  docker-archive and OCI archives; ``manifest``: OCI and Docker manifests and indexes;
- ``builtin``: the built-in busybox image.
"""
