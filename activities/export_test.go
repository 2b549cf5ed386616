package activities

// StockSize is the number of wallets ready in a's warm stock. (A function,
// not a method: every exported method of Activities is an activity.)
func StockSize(a *Activities) int {
	if a.stock == nil {
		return 0
	}
	return a.stock.size()
}
