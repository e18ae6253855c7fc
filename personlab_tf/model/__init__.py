"""The PersonLab network: atrous ResNet backbone, heads, recurrent offset refinement."""
