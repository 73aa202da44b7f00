
2no2yes2yes2yes2yes2yes2yes2yes2yes2yesBY