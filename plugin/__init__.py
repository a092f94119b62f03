"""What faces editors and users: the CLI, the local engine service, installers, the Premiere panel."""
