from volctl.main import entry

entry()
