"""Pure text tools shared by documents, retrieval and the local provider: no I/O."""
