
2ccc2a2ccc2ccc2ccc2ccc2ccc2ccc2a2cccBY