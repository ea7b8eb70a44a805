"""Pictures of what the model computes: flow colour maps and occlusion overlays (numpy)."""
