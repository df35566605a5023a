package deid
