"""Tools for vocational trainers: searching the RestART-kit of resources."""
