// placeholder, replaced by the io implementation
