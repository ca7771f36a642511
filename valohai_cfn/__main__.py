from valohai_cfn.cli import main

main()
